//! The local copy of a store's revocations that every request is checked against: one hash
//! probe per kind of entry present, under a read lock, no allocation.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use smallvec::SmallVec;

use super::probe::{Key, PROVIDER_SESSION, Probe, SESSION, SUBJECT, TOKEN, hash};
use super::{Revocation, Target};

/// `confirmed` of a mirror that is the store itself (one process): never stale.
const LOCAL: u64 = u64::MAX;

/// A store's revocations as this instance knows them. Cheap to clone; a store receives one in
/// [`RevocationStore::follow`](super::RevocationStore::follow) and keeps it current.
#[derive(Clone)]
pub struct Mirror {
    inner: Arc<Inner>,
}

struct Inner {
    entries: RwLock<Entries>,
    len: AtomicUsize,
    /// Unix seconds at which the store last confirmed the mirror current (0: never, [`LOCAL`]:
    /// the mirror is the store).
    confirmed: AtomicU64,
    /// More entries arrived than the cap allows: the mirror cannot be trusted complete.
    overflow: AtomicBool,
    /// The registry that checks against it is gone: followers stop.
    closed: AtomicBool,
    cap: usize,
    status: Mutex<Status>,
}

#[derive(Default)]
struct Status {
    error: Option<String>,
    resyncs: u64,
    last_prune: u64,
}

/// What a mirror holds and how current it is, for `/healthz`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MirrorState {
    /// Entries held.
    pub entries: usize,
    /// Seconds since the store last confirmed the mirror current (`None`: never; `Some(0)` for
    /// a store in this process).
    pub staleness_secs: Option<u64>,
    /// Whether requests may be checked against it now (current within the bound, complete).
    pub fresh: bool,
    /// The store's last error, until it recovers.
    pub error: Option<String>,
    /// Full reloads from the store (at start and after each reconnect).
    pub resyncs: u64,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

/// Which kind of entry refused a credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Revoked {
    Session,
    ProviderSession,
    Token,
    Subject,
}

impl Revoked {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::ProviderSession => "provider_session",
            Self::Token => "token",
            Self::Subject => "subject",
        }
    }
}

const KINDS: usize = 4;

fn kind_index(target: &Target) -> usize {
    match target {
        Target::Session(_) => SESSION,
        Target::ProviderSession(_) => PROVIDER_SESSION,
        Target::Token(_) => TOKEN,
        Target::Subject { .. } => SUBJECT,
    }
}

/// The entries, keyed by a hash of (kind, issuer, value) with the full values compared on a
/// match: a probe builds no key.
struct Entries {
    map: HashMap<u64, SmallVec<[Revocation; 1]>, BuildHasherDefault<PassThrough>>,
    by_kind: [usize; KINDS],
    len: usize,
}

/// The map's keys are hashes already.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; a fallback that still mixes every byte.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Entries {
    fn new() -> Self {
        Self {
            map: HashMap::default(),
            by_kind: [0; KINDS],
            len: 0,
        }
    }

    /// Adds or widens an entry; `false` when the cap refused a new one.
    fn insert(&mut self, revocation: Revocation, cap: usize) -> bool {
        let kind = kind_index(&revocation.target);
        let hash = hash(kind, &revocation.issuer, revocation.target.value());
        let slot = self.map.entry(hash).or_default();
        if let Some(same) = slot.iter_mut().find(|r| same_entry(r, &revocation)) {
            same.merge(&revocation);
            return true;
        }
        if self.len >= cap {
            if slot.is_empty() {
                self.map.remove(&hash);
            }
            return false;
        }
        slot.push(revocation);
        self.by_kind[kind] += 1;
        self.len += 1;
        true
    }

    /// The entry of `kind` for `issuer` and `value`, whose `hash` the caller has.
    fn find(&self, kind: usize, issuer: &str, value: &str, hash: u64) -> Option<&Revocation> {
        if self.by_kind[kind] == 0 {
            return None;
        }
        self.map.get(&hash)?.iter().find(|r| {
            kind_index(&r.target) == kind && r.issuer == issuer && r.target.value() == value
        })
    }

    fn prune(&mut self, now: u64) {
        let by_kind = &mut self.by_kind;
        let len = &mut self.len;
        self.map.retain(|_, slot| {
            slot.retain(|r| {
                let keep = r.until > now;
                if !keep {
                    by_kind[kind_index(&r.target)] -= 1;
                    *len -= 1;
                }
                keep
            });
            !slot.is_empty()
        });
    }
}

fn same_entry(a: &Revocation, b: &Revocation) -> bool {
    kind_index(&a.target) == kind_index(&b.target)
        && a.issuer == b.issuer
        && a.target.value() == b.target.value()
}

impl Mirror {
    /// An empty mirror holding at most `cap` entries.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                entries: RwLock::new(Entries::new()),
                len: AtomicUsize::new(0),
                confirmed: AtomicU64::new(0),
                overflow: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                cap,
                status: Mutex::new(Status::default()),
            }),
        }
    }

    /// Adds (or widens) entries, as they arrive from the store's change log. Expired ones are
    /// skipped.
    pub fn apply(&self, revocations: impl IntoIterator<Item = Revocation>) {
        if !self.insert(revocations) {
            self.overflowed();
        }
    }

    /// Adds one entry written in this process, unless the cap refuses it (then nothing
    /// changes: the store refused the write, so the mirror is still complete).
    pub(crate) fn admit(&self, revocation: Revocation) -> Result<(), super::StoreError> {
        if self.insert([revocation]) {
            Ok(())
        } else {
            Err(super::StoreError::new(format!(
                "the revocation store is full (max_entries = {})",
                self.inner.cap
            )))
        }
    }

    /// Adds (or widens) entries, skipping ended ones, and publishes the count; `false` when
    /// the cap refused one.
    fn insert(&self, revocations: impl IntoIterator<Item = Revocation>) -> bool {
        let now = crate::jws::claims::now();
        let mut entries = self.write();
        let mut fits = true;
        for r in revocations {
            if r.until > now && !entries.insert(r, self.inner.cap) {
                fits = false;
            }
        }
        self.maybe_prune(&mut entries, now);
        self.inner.len.store(entries.len, Ordering::Release);
        #[cfg(feature = "metrics")]
        metrics::gauge!("jwtgate_revocation_entries").set(entries.len as f64);
        fits
    }

    /// Loads the store's whole set (after a start or a reconnect): what the mirror missed is
    /// added; nothing is taken away (a revocation only ends at its `until`), so an entry
    /// written here while the set was being read stays. The merged set is built before it is
    /// swapped in: requests never see a half-loaded mirror.
    pub fn reload(&self, revocations: impl IntoIterator<Item = Revocation>) {
        let now = crate::jws::claims::now();
        let mut fresh = Entries::new();
        let mut full = false;
        for r in revocations {
            if r.until > now && !fresh.insert(r, self.inner.cap) {
                full = true;
            }
        }
        let mut entries = self.write();
        for r in entries.map.values().flatten() {
            if r.until > now && !fresh.insert(r.clone(), self.inner.cap) {
                full = true;
            }
        }
        let len = fresh.len;
        *entries = fresh;
        drop(entries);
        self.inner.len.store(len, Ordering::Release);
        self.inner.overflow.store(full, Ordering::Release);
        self.status().resyncs += 1;
        #[cfg(feature = "metrics")]
        {
            metrics::counter!("jwtgate_revocation_resyncs_total").increment(1);
            metrics::gauge!("jwtgate_revocation_entries").set(len as f64);
        }
        if full {
            self.overflowed();
        }
    }

    fn overflowed(&self) {
        self.inner.overflow.store(true, Ordering::Release);
        let message = format!(
            "the store holds more than max_entries ({}) revocations",
            self.inner.cap
        );
        tracing::error!(%message, "revocation mirror incomplete: requests are refused");
        self.status().error = Some(message);
    }

    /// Says the mirror is current as of now (after a reload, or a read of the change log that
    /// returned), and clears the last error.
    pub fn confirm(&self) {
        let now = crate::jws::claims::now();
        #[cfg(feature = "metrics")]
        metrics::gauge!("jwtgate_revocation_staleness_seconds").set(0.0);
        if self.inner.confirmed.load(Ordering::Acquire) != LOCAL {
            self.inner.confirmed.store(now, Ordering::Release);
        }
        if !self.inner.overflow.load(Ordering::Acquire) {
            self.status().error = None;
        }
    }

    /// Marks the mirror as the store itself (one process): it is never stale.
    pub fn confirm_local(&self) {
        self.inner.confirmed.store(LOCAL, Ordering::Release);
    }

    /// Records a store error (shown on `/healthz` until the next [`confirm`](Self::confirm)).
    /// The entries stay: an error never forgets a revocation.
    pub fn report_error(&self, error: &super::StoreError) {
        self.status().error = Some(error.message().to_owned());
        #[cfg(feature = "metrics")]
        {
            metrics::counter!("jwtgate_store_errors_total").increment(1);
            let confirmed = self.inner.confirmed.load(Ordering::Acquire);
            if confirmed != 0 && confirmed != LOCAL {
                let behind = crate::jws::claims::now().saturating_sub(confirmed);
                metrics::gauge!("jwtgate_revocation_staleness_seconds").set(behind as f64);
            }
        }
    }

    /// Whether the registry checking against this mirror is gone (a follower then stops).
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    pub(crate) fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
    }

    /// The most entries it holds (a store refuses writes beyond it).
    pub fn capacity(&self) -> usize {
        self.inner.cap
    }

    /// The number of entries held.
    pub fn len(&self) -> usize {
        self.inner.len.load(Ordering::Acquire)
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether requests may be checked against the mirror at `now`: confirmed current within
    /// `max_staleness` seconds, and complete.
    pub(crate) fn is_fresh(&self, now: u64, max_staleness: u64) -> bool {
        let confirmed = self.inner.confirmed.load(Ordering::Acquire);
        (confirmed == LOCAL || (confirmed != 0 && now <= confirmed.saturating_add(max_staleness)))
            && !self.inner.overflow.load(Ordering::Acquire)
    }

    /// How current it is, for `/healthz` and the staleness gauge.
    pub fn state(&self, max_staleness: u64) -> MirrorState {
        let now = crate::jws::claims::now();
        let confirmed = self.inner.confirmed.load(Ordering::Acquire);
        let staleness_secs = match confirmed {
            LOCAL => Some(0),
            0 => None,
            at => Some(now.saturating_sub(at)),
        };
        let status = self.status();
        MirrorState {
            entries: self.len(),
            staleness_secs,
            fresh: self.is_fresh(now, max_staleness),
            error: status.error.clone(),
            resyncs: status.resyncs,
        }
    }

    /// The entry that refuses the credential of `probe` (and of cookie-mode session
    /// `session`) at `now`, if any: one probe per kind present, nothing hashed but the session.
    pub(crate) fn check(&self, probe: &Probe, session: Option<&str>, now: u64) -> Option<Revoked> {
        if self.is_empty() {
            return None;
        }
        let entries = self.read();
        let issuer = &*probe.issuer;
        let live = |r: &&Revocation| r.until > now;
        if let Some(session) = session
            && entries.by_kind[SESSION] > 0
            && entries
                .find(SESSION, issuer, session, hash(SESSION, issuer, session))
                .filter(live)
                .is_some()
        {
            return Some(Revoked::Session);
        }
        let found = |kind, key: &Option<Key>| {
            key.as_ref()
                .and_then(|k| entries.find(kind, issuer, &k.value, k.hash))
                .filter(live)
        };
        if found(PROVIDER_SESSION, &probe.sid).is_some() {
            return Some(Revoked::ProviderSession);
        }
        if found(TOKEN, &probe.jti).is_some() {
            return Some(Revoked::Token);
        }
        if let Some(r) = found(SUBJECT, &probe.subject)
            && let Target::Subject { before, .. } = r.target
            && probe.iat.is_none_or(|iat| iat <= before)
        {
            return Some(Revoked::Subject);
        }
        None
    }

    fn maybe_prune(&self, entries: &mut Entries, now: u64) {
        let mut status = self.status();
        if status.last_prune != now {
            status.last_prune = now;
            entries.prune(now);
        }
    }

    /// Drops entries that ended (stores call it now and then; writes do it too).
    pub fn prune(&self) {
        let now = crate::jws::claims::now();
        let mut entries = self.write();
        entries.prune(now);
        self.inner.len.store(entries.len, Ordering::Release);
    }

    // A poisoned lock only means a panic elsewhere while holding it; the data is still whole
    // (every mutation completes before the guard drops).
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Entries> {
        self.inner
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Entries> {
        self.inner
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.inner
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The entries' approximate heap size in bytes (for the benchmark's memory figure).
    #[doc(hidden)]
    pub fn heap_bytes(&self) -> usize {
        let entries = self.read();
        let per_slot = std::mem::size_of::<(u64, SmallVec<[Revocation; 1]>)>() + 1;
        let strings: usize = entries
            .map
            .values()
            .flatten()
            .map(|r| r.issuer.capacity() + r.target.value().len())
            .sum();
        entries.map.capacity() * per_slot + strings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAR: u64 = 4_000_000_000;

    /// A credential's probe, from its claims (`iss` https://idp unless given).
    fn probe(claims: &str) -> Probe {
        let claims = crate::jws::claim_set::ClaimSet::parse(claims.into()).unwrap();
        Probe::of(&claims).unwrap()
    }

    fn credential() -> Probe {
        probe(r#"{"iss":"https://idp","sub":"ada","jti":"j1","sid":"s1","iat":1000}"#)
    }

    #[test]
    fn each_kind_refuses_only_its_own_issuer_and_value() {
        let cases = [
            (Target::Session("local-1".into()), Revoked::Session),
            (
                Target::ProviderSession("s1".into()),
                Revoked::ProviderSession,
            ),
            (Target::Token("j1".into()), Revoked::Token),
            (
                Target::Subject {
                    subject: "ada".into(),
                    before: 1_000,
                },
                Revoked::Subject,
            ),
        ];
        for (target, kind) in cases {
            let mirror = Mirror::new(10);
            mirror.apply([Revocation::new("https://idp", target.clone(), FAR)]);
            let session = Some("local-1");
            assert_eq!(
                mirror.check(&credential(), session, 2_000),
                Some(kind),
                "{target:?}"
            );
            // Another issuer's credential with the same values passes.
            let other =
                probe(r#"{"iss":"https://other","sub":"ada","jti":"j1","sid":"s1","iat":1000}"#);
            assert_eq!(mirror.check(&other, session, 2_000), None, "{target:?}");
            // The same value in another kind's claim does not count.
            let crossed =
                probe(r#"{"iss":"https://idp","sub":"local-1","jti":"s1","sid":"j1","iat":1000}"#);
            assert_eq!(
                mirror.check(&crossed, Some("ada"), 2_000),
                None,
                "{target:?}"
            );
            // Escapes are decoded: the same credential spelled with them is refused too.
            let escaped = probe(
                r#"{"iss":"https:\/\/idp","sub":"\u0061da","jti":"j\u0031","sid":"s\u0031","iat":1000}"#,
            );
            assert_eq!(
                mirror.check(&escaped, session, 2_000),
                Some(kind),
                "{target:?}"
            );
            // Past `until`, the entry is gone.
            assert_eq!(
                mirror.check(&credential(), session, FAR),
                None,
                "{target:?}"
            );
        }
    }

    #[test]
    fn a_subject_is_refused_up_to_its_instant_and_without_iat() {
        let mirror = Mirror::new(10);
        let subject = |before| Target::Subject {
            subject: "ada".into(),
            before,
        };
        mirror.apply([Revocation::new("https://idp", subject(1_000), FAR)]);
        let at = |iat: &str| probe(&format!(r#"{{"iss":"https://idp","sub":"ada"{iat}}}"#));
        let check = |p: &Probe| mirror.check(p, None, 2_000);
        assert_eq!(check(&at(r#","iat":999"#)), Some(Revoked::Subject));
        assert_eq!(check(&at(r#","iat":1000.9"#)), Some(Revoked::Subject));
        assert_eq!(check(&at("")), Some(Revoked::Subject));
        assert_eq!(check(&at(r#","iat":"soon""#)), Some(Revoked::Subject));
        // Signed in again after the revocation: accepted.
        let later = at(r#","iat":1001"#);
        assert_eq!(check(&later), None);
        // A second revocation of the subject widens the first, it does not add an entry.
        mirror.apply([Revocation::new("https://idp", subject(1_500), FAR)]);
        assert_eq!(mirror.len(), 1);
        assert_eq!(check(&later), Some(Revoked::Subject));
        mirror.apply([Revocation::new("https://idp", subject(1_200), FAR)]);
        assert_eq!(check(&at(r#","iat":1400"#)), Some(Revoked::Subject));
    }

    #[test]
    fn expired_entries_are_skipped_and_pruned() {
        let mirror = Mirror::new(10);
        let now = crate::jws::claims::now();
        mirror.apply([
            Revocation::new("i", Target::Token("old".into()), now - 1),
            Revocation::new("i", Target::Token("live".into()), now + 2),
        ]);
        assert_eq!(mirror.len(), 1);
        mirror.prune();
        assert_eq!(mirror.len(), 1);
        let mut entries = mirror.write();
        entries.prune(now + 2);
        assert_eq!(
            (entries.len, entries.map.len(), entries.by_kind[2]),
            (0, 0, 0)
        );
    }

    #[test]
    fn the_cap_is_held_and_an_overflow_makes_the_mirror_unfit() {
        let mirror = Mirror::new(3);
        mirror.confirm();
        let now = crate::jws::claims::now();
        assert!(mirror.is_fresh(now, 5));
        mirror.apply((0..5).map(|i| Revocation::new("i", Target::Token(format!("t{i}")), FAR)));
        assert_eq!(mirror.len(), 3);
        let state = mirror.state(5);
        assert!(!state.fresh);
        assert_eq!(
            state.error.as_deref(),
            Some("the store holds more than max_entries (3) revocations")
        );
        // A reload that fits makes it whole again; it keeps what the mirror held (t2 was
        // written here while the set was read) and adds what it missed (a later t0 merge).
        let mirror = Mirror::new(3);
        mirror.apply([Revocation::new("i", Target::Token("t2".into()), FAR)]);
        mirror.reload((0..2).map(|i| Revocation::new("i", Target::Token(format!("t{i}")), FAR)));
        mirror.confirm();
        let state = mirror.state(5);
        assert!(state.fresh, "{state:?}");
        assert_eq!((state.entries, state.error, state.resyncs), (3, None, 1));
        // A reload over the cap (merged with what is held) leaves it unfit again.
        mirror.reload([Revocation::new("i", Target::Token("t9".into()), FAR)]);
        assert!(!mirror.state(5).fresh);
    }

    #[test]
    fn freshness_follows_confirmations() {
        let mirror = Mirror::new(3);
        let now = crate::jws::claims::now();
        // Never confirmed: not fresh (an instance that started while its store was down).
        assert!(!mirror.is_fresh(now, 5));
        assert_eq!(mirror.state(5).staleness_secs, None);
        mirror.confirm();
        assert!(mirror.is_fresh(now + 5, 5));
        assert!(!mirror.is_fresh(now + 6, 5));
        mirror.confirm_local();
        assert!(mirror.is_fresh(u64::MAX - 1, 0));
        // A later confirm does not undo "local".
        mirror.confirm();
        assert_eq!(mirror.state(5).staleness_secs, Some(0));
    }

    #[test]
    fn an_error_is_shown_until_the_next_confirmation_and_keeps_the_entries() {
        let mirror = Mirror::new(3);
        mirror.apply([Revocation::new("i", Target::Token("t".into()), FAR)]);
        mirror.report_error(&super::super::StoreError::new("connection refused"));
        assert_eq!(mirror.state(5).error.as_deref(), Some("connection refused"));
        assert_eq!(mirror.len(), 1);
        mirror.confirm();
        assert_eq!(mirror.state(5).error, None);
    }
}
