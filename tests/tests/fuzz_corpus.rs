//! The fuzz targets' seed corpora (`fuzz/corpus/<target>/`) and every input that once made a
//! target fail (`fuzz/regressions/<target>/`), replayed on stable through the same entry points
//! (`jwtgate::__fuzz`): a panic here is a finding, as it is under libFuzzer.

use std::path::{Path, PathBuf};

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 9] = [
    ("compact_jws", jwtgate::__fuzz::compact_jws),
    ("claim_set", jwtgate::__fuzz::claim_set),
    ("jwk_set", jwtgate::__fuzz::jwk_set),
    ("discovery_document", jwtgate::__fuzz::discovery_document),
    ("config_file", jwtgate::__fuzz::config_file),
    ("cookie_header", jwtgate::__fuzz::cookie_header),
    ("login_callback", jwtgate::__fuzz::login_callback),
    ("logout_token", jwtgate::__fuzz::logout_token),
    ("request", jwtgate::__fuzz::request),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_target_has_a_seed_corpus_and_its_binary() {
    for (name, _) in TARGETS {
        let seeds = inputs(&fuzz_dir().join("corpus").join(name));
        assert!(seeds.len() >= 3, "{name} has {} seeds", seeds.len());
        assert!(
            fuzz_dir()
                .join("fuzz_targets")
                .join(format!("{name}.rs"))
                .is_file(),
            "{name} has a fuzz target"
        );
    }
    // And no target binary without an entry here.
    let binaries = inputs(&fuzz_dir().join("fuzz_targets"));
    assert_eq!(binaries.len(), TARGETS.len(), "{binaries:?}");
}

#[test]
fn seed_corpora_and_regressions_pass_every_target() {
    let mut replayed = 0;
    for (name, target) in TARGETS {
        for kind in ["corpus", "regressions"] {
            for file in inputs(&fuzz_dir().join(kind).join(name)) {
                let data = std::fs::read(&file).unwrap();
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(outcome.is_ok(), "{} fails {name}", file.display());
                replayed += 1;
            }
        }
    }
    assert!(replayed >= 27, "{replayed} inputs replayed");
}
