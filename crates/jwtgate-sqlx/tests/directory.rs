//! The directory through the layer, on SQLite and on the real Postgres: registration (and its
//! race), contacts, emails, service users, subject linking, partners, the cache, profile
//! completion, mapped schemas, migrations and errors.

mod support;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use axum::{Json, extract::Request};
use http::StatusCode;
use jwtgate::{
    Algorithm, Identity, KeySource, Partner, Registry, User, Validator, directory::UserMatch,
    identity::PartnerId, identity::UserRecord,
};
use jwtgate_sqlx::SqlDirectory;
use jwtgate_sqlx::{ContactsTable, SqlSettings, UsersTable};
use jwtgate_test::{TestKey, claims, mint};
use jwtgate_tests::{Reply, get_with, send};
use serde_json::{Value, json};
use support::{Db, backends};

const SECRET: &str = "thesecret-of-at-least-32-bytes!!";
const ISS: &str = "https://issuer.example";

fn token(extra: Value) -> String {
    let mut c = claims(ISS, "api", 300);
    c["sub"] = json!("user-1");
    if let (Some(c), Value::Object(extra)) = (c.as_object_mut(), extra) {
        c.extend(extra);
    }
    mint(&TestKey::hmac(SECRET), "HS256", json!({}), &c)
}

fn validator(name: &str, user: impl Into<User>) -> Validator {
    Validator::new(name)
        .issuer(ISS)
        .audience("api")
        .algorithm(Algorithm::HS256)
        .key(KeySource::secret(SECRET))
        .user(user)
}

async fn me(identity: Identity, partner: Option<PartnerId>, record: UserRecord) -> Json<Value> {
    Json(json!({
        "uid": identity.user_id().to_json(),
        "partner": partner.map(|p| p.0),
        "email": record.email,
        "first_name": record.first_name,
        "last_name": record.last_name,
        "full_name": record.full_name,
        "phone": record.phone,
        "profile_complete": record.profile_complete,
    }))
}

fn app(registry: &Registry, directory: &SqlDirectory, mode: &str) -> Router {
    let layer = registry.layer(mode).unwrap();
    Router::new()
        .route("/hello", get(me))
        .merge(jwtgate_sqlx::profile::router(directory.clone(), "/profile"))
        .route_layer(layer)
}

async fn connect(settings: SqlSettings) -> SqlDirectory {
    SqlDirectory::connect(&settings).await.unwrap()
}

async fn setup(db: &Db, validators: Vec<Validator>) -> (SqlDirectory, Registry) {
    let directory = connect(SqlSettings::new(&db.url)).await;
    let mut builder = Registry::builder()
        .users(directory.clone())
        .directory(directory.clone());
    for v in validators {
        builder = builder.validator(v);
    }
    (directory, builder.build().unwrap())
}

async fn api(app: &Router, token: &str) -> Reply {
    send(
        app,
        get_with("/hello", &[("authorization", &format!("Bearer {token}"))]),
    )
    .await
}

async fn page(app: &Router, path: &str, token: &str) -> Reply {
    let auth = format!("Bearer {token}");
    send(
        app,
        get_with(path, &[("authorization", &auth), ("accept", "text/html")]),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_first_requests_create_one_user_and_all_get_its_id() {
    for db in backends().await {
        let (directory, registry) = setup(
            &db,
            vec![validator(
                "app",
                User::directory(UserMatch::Email).register(true),
            )],
        )
        .await;
        let app = app(&registry, &directory, "jwt_app");
        let t = token(json!({"email": "new.person@example.com"}));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (app, t) = (app.clone(), t.clone());
            tasks.push(tokio::spawn(async move { api(&app, &t).await }));
        }
        let mut ids = Vec::new();
        for task in tasks {
            let reply = task.await.unwrap();
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{}: {:?}",
                db.backend,
                reply.body
            );
            ids.push(reply.body["uid"].clone());
        }
        ids.dedup();
        assert_eq!(
            ids.len(),
            1,
            "{}: every request gets the same id",
            db.backend
        );
        assert_eq!(
            db.count("SELECT COUNT(*) FROM jwtgate_users").await,
            1,
            "{}",
            db.backend
        );
        let id = db.count("SELECT id FROM jwtgate_users").await;
        assert_eq!(ids[0], json!(id));
        db.finish().await;
    }
}

#[tokio::test]
async fn registration_copies_the_one_contact_with_that_email_and_links_it() {
    for db in backends().await {
        let (directory, registry) = setup(
            &db,
            vec![
                validator("app", User::directory(UserMatch::Email).register(true))
                    .partner(Partner::by_email()),
            ],
        )
        .await;
        db.exec(
            "INSERT INTO jwtgate_contacts (email, first_name, last_name, phone) \
             VALUES (' Grace@Example.com ', 'Grace', 'Hopper', '+1 555 0100')",
        )
        .await;
        let contact = db.count("SELECT id FROM jwtgate_contacts").await;
        let app = app(&registry, &directory, "jwt_app");
        let reply = api(&app, &token(json!({"email": "grace@example.COM"}))).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", db.backend);
        assert_eq!(reply.body["first_name"], "Grace");
        assert_eq!(reply.body["last_name"], "Hopper");
        assert_eq!(reply.body["full_name"], "Grace Hopper");
        assert_eq!(reply.body["phone"], "+1 555 0100");
        assert_eq!(reply.body["profile_complete"], true);
        assert_eq!(reply.body["partner"], json!(contact), "{}", db.backend);
        let uid = reply.body["uid"].as_i64().unwrap();
        assert_eq!(db.count("SELECT user_id FROM jwtgate_contacts").await, uid);
        // A page navigation is not redirected: the profile is complete.
        let t = token(json!({"email": "grace@example.COM"}));
        assert_eq!(page(&app, "/hello", &t).await.status, StatusCode::OK);
        db.finish().await;
    }
}

#[tokio::test]
async fn a_placeholder_user_is_sent_to_the_profile_page_once_and_back() {
    for db in backends().await {
        let (directory, registry) = setup(
            &db,
            vec![validator(
                "app",
                User::directory(UserMatch::Email)
                    .register(true)
                    .profile_url("/profile"),
            )],
        )
        .await;
        let app = app(&registry, &directory, "jwt_app");
        let t = token(json!({"email": "placeholder@example.com"}));
        // API calls are never redirected.
        let reply = api(&app, &t).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body["profile_complete"], false);
        assert_eq!(reply.body["first_name"], Value::Null);
        // A navigation elsewhere goes to the profile page, with where it was going.
        let reply = page(&app, "/hello?x=1&y=a%20b", &t).await;
        assert_eq!(reply.status, StatusCode::FOUND, "{}", db.backend);
        assert_eq!(
            reply.header("location"),
            "/profile?next=%2Fhello%3Fx%3D1%26y%3Da%2520b"
        );
        // The profile page itself is served.
        let form = send(
            &app,
            get_with(
                "/profile?next=%2Fhello",
                &[
                    ("authorization", &format!("Bearer {t}")),
                    ("accept", "text/html"),
                ],
            ),
        )
        .await;
        assert_eq!(form.status, StatusCode::OK);
        // Saving it (a same-origin post) completes the profile and goes back to `next`.
        let post = |body: &'static str, origin: &'static str| {
            Request::post("/profile")
                .header("authorization", format!("Bearer {t}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("host", "app.example")
                .header("origin", origin)
                .body(Body::from(body))
                .unwrap()
        };
        let refused = send(
            &app,
            post(
                "first_name=A&last_name=B&next=%2Fhello",
                "https://evil.example",
            ),
        )
        .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        let empty = send(
            &app,
            post(
                "first_name=+&last_name=B&next=%2Fhello",
                "http://app.example",
            ),
        )
        .await;
        assert_eq!(empty.status, StatusCode::BAD_REQUEST);
        let saved = send(
            &app,
            post(
                "first_name=Ada&last_name=Lovelace&next=%2Fhello%3Fx%3D1",
                "http://app.example",
            ),
        )
        .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", db.backend);
        assert_eq!(saved.header("location"), "/hello?x=1");
        // The cached lookup was dropped: the next navigation is served, with the names.
        let reply = page(&app, "/hello", &t).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", db.backend);
        assert_eq!(reply.body["full_name"], "Ada Lovelace");
        assert_eq!(reply.body["profile_complete"], true);
        assert_eq!(
            db.count(
                "SELECT COUNT(*) FROM jwtgate_users WHERE profile_complete AND first_name = 'Ada'"
            )
            .await,
            1
        );
        db.finish().await;
    }
}

#[tokio::test]
async fn emails_compare_trimmed_and_case_insensitively_and_unverified_ones_are_never_used() {
    for db in backends().await {
        let (directory, registry) = setup(
            &db,
            vec![validator(
                "app",
                User::directory(UserMatch::Email).register(true),
            )],
        )
        .await;
        let app = app(&registry, &directory, "jwt_app");
        let first = api(&app, &token(json!({"email": "  Ada@Example.com"}))).await;
        assert_eq!(first.status, StatusCode::OK);
        assert_eq!(first.body["email"], "Ada@Example.com");
        let again = api(
            &app,
            &token(json!({"email": "ada@EXAMPLE.com ", "sub": "other"})),
        )
        .await;
        assert_eq!(again.body["uid"], first.body["uid"], "{}", db.backend);
        // `email_verified: false` (boolean or Cognito's string): neither matched nor registered.
        for verified in [json!(false), json!("false")] {
            for email in ["ada@example.com", "someone.new@example.com"] {
                let reply = api(
                    &app,
                    &token(json!({"email": email, "email_verified": verified})),
                )
                .await;
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{email} {verified}");
                assert_eq!(
                    reply.body["error_description"],
                    "token email is not verified"
                );
            }
        }
        assert_eq!(db.count("SELECT COUNT(*) FROM jwtgate_users").await, 1);
        db.finish().await;
    }
}

#[tokio::test]
async fn unknown_users_are_refused_when_registration_is_off() {
    for db in backends().await {
        let (directory, registry) = setup(
            &db,
            vec![validator("app", User::directory(UserMatch::Email))],
        )
        .await;
        db.add_user("Known@example.com", "known@example.com").await;
        let app = app(&registry, &directory, "jwt_app");
        let reply = api(&app, &token(json!({"email": "stranger@example.com"}))).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.body["error_description"], "token user is not known");
        let known = api(&app, &token(json!({"email": "known@example.com"}))).await;
        assert_eq!(known.status, StatusCode::OK);
        // Found on a cache miss: its last-seen time was recorded.
        assert!(db.count("SELECT last_seen_at FROM jwtgate_users").await > 0);
        assert_eq!(db.count("SELECT COUNT(*) FROM jwtgate_users").await, 1);
        db.finish().await;
    }
}

#[tokio::test]
async fn service_tokens_are_users_keyed_by_common_name_only_when_enabled() {
    for db in backends().await {
        let (directory, registry) = setup(
            &db,
            vec![
                validator("humans", User::directory(UserMatch::Email).register(true)),
                validator(
                    "machines",
                    User::directory(UserMatch::Email)
                        .register(true)
                        .service_users(true),
                ),
            ],
        )
        .await;
        let service = token(json!({"sub": "", "common_name": "ci-runner.access"}));
        let humans = app(&registry, &directory, "jwt_humans");
        let reply = api(&humans, &service).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            reply.body["error_description"],
            "service tokens are not accepted: service users are off"
        );
        let no_email = api(&humans, &token(json!({}))).await;
        assert_eq!(no_email.body["error_description"], "token has no email");
        assert_eq!(db.count("SELECT COUNT(*) FROM jwtgate_users").await, 0);
        let machines = app(&registry, &directory, "jwt_machines");
        let first = api(&machines, &service).await;
        assert_eq!(
            first.status,
            StatusCode::OK,
            "{}: {:?}",
            db.backend,
            first.body
        );
        let again = api(&machines, &service).await;
        assert_eq!(again.body["uid"], first.body["uid"]);
        assert_eq!(
            db.count("SELECT COUNT(*) FROM jwtgate_users WHERE service_name = 'ci-runner.access' AND email IS NULL").await,
            1
        );
        db.finish().await;
    }
}

#[tokio::test]
async fn matching_by_subject_links_a_user_known_by_email_on_first_sight() {
    for db in backends().await {
        let (directory, registry) = setup(
            &db,
            vec![
                validator(
                    "by_subject",
                    User::directory(UserMatch::Subject).register(true),
                ),
                validator("by_email", User::directory(UserMatch::Email).register(true)),
            ],
        )
        .await;
        db.add_user("lin@example.com", "lin@example.com").await;
        let existing = db.count("SELECT id FROM jwtgate_users").await;
        let app = app(&registry, &directory, "jwt_by_subject");
        let t = token(json!({"sub": "kc-123", "email": "LIN@example.com"}));
        let reply = api(&app, &t).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{}: {:?}",
            db.backend,
            reply.body
        );
        assert_eq!(reply.body["uid"], json!(existing));
        assert_eq!(
            db.count("SELECT COUNT(*) FROM jwtgate_users WHERE issuer = 'https://issuer.example' AND subject = 'kc-123'").await,
            1
        );
        // The same subject with another email is the same user; a new subject whose email
        // belongs to a linked user is not merged into it.
        let moved = api(
            &app,
            &token(json!({"sub": "kc-123", "email": "lin.new@example.com"})),
        )
        .await;
        assert_eq!(moved.body["uid"], json!(existing));
        let intruder = api(
            &app,
            &token(json!({"sub": "kc-999", "email": "lin@example.com"})),
        )
        .await;
        assert_eq!(intruder.status, StatusCode::UNAUTHORIZED, "{}", db.backend);
        // Without a verified email, a new subject is registered on its own.
        let fresh = api(&app, &token(json!({"sub": "kc-555"}))).await;
        assert_eq!(fresh.status, StatusCode::OK);
        assert_ne!(fresh.body["uid"], json!(existing));
        db.finish().await;
    }
}

#[tokio::test]
async fn partners_follow_auth_jwts_rule_one_match_gives_its_id_none_or_several_give_none() {
    for db in backends().await {
        let (directory, registry) = setup(
            &db,
            vec![
                validator("optional", User::directory(UserMatch::Email).register(true))
                    .partner(Partner::by_email()),
                validator("required", User::directory(UserMatch::Email).register(true))
                    .partner(Partner::by_email().required()),
            ],
        )
        .await;
        db.exec(
            "INSERT INTO jwtgate_contacts (email) VALUES ('one@example.com');\
             INSERT INTO jwtgate_contacts (email) VALUES ('two@example.com');\
             INSERT INTO jwtgate_contacts (email) VALUES ('TWO@example.com ');",
        )
        .await;
        let one = db
            .count("SELECT id FROM jwtgate_contacts WHERE email = 'one@example.com'")
            .await;
        let optional = app(&registry, &directory, "jwt_optional");
        let required = app(&registry, &directory, "jwt_required");
        let reply = api(&optional, &token(json!({"email": "One@Example.com"}))).await;
        assert_eq!(reply.body["partner"], json!(one), "{}", db.backend);
        for email in ["two@example.com", "none@example.com"] {
            let reply = api(&optional, &token(json!({"email": email}))).await;
            assert_eq!(reply.status, StatusCode::OK, "{email}: {:?}", reply.body);
            assert_eq!(reply.body["partner"], Value::Null, "{email}");
            let reply = api(&required, &token(json!({"email": email}))).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{email}");
            assert_eq!(
                reply.body["error_description"],
                "no partner matches the token"
            );
        }
        db.finish().await;
    }
}

#[tokio::test]
async fn both_databases_match_contacts_by_one_email_rule_and_look_alikes_never_meet() {
    for db in backends().await {
        let (directory, registry) = setup(
            &db,
            vec![
                validator("app", User::directory(UserMatch::Email).register(true))
                    .partner(Partner::by_email()),
            ],
        )
        .await;
        // A Kelvin sign (U+212A) where `kate`'s K is, an identical non-ASCII address, an
        // ideographic space (U+3000) after `mark`'s, spaces around `lin`'s.
        db.exec(
            "INSERT INTO jwtgate_contacts (email) VALUES ('\u{212A}ate@example.com');\
             INSERT INTO jwtgate_contacts (email) VALUES ('J\u{D6}RG@example.com');\
             INSERT INTO jwtgate_contacts (email) VALUES ('mark@example.com\u{3000}');\
             INSERT INTO jwtgate_contacts (email) VALUES ('  Lin@Example.com ');",
        )
        .await;
        let id = |email: &str| format!("SELECT id FROM jwtgate_contacts WHERE email = '{email}'");
        let jorg = db.count(&id("J\u{D6}RG@example.com")).await;
        let lin = db.count(&id("  Lin@Example.com ")).await;
        let app = app(&registry, &directory, "jwt_app");
        for (email, partner) in [
            // The look-alike never becomes Kate's partner (nor fills her registration).
            ("kate@example.com", Value::Null),
            ("KATE@example.com", Value::Null),
            // The same non-ASCII address matches itself, ASCII letters in any case.
            ("J\u{D6}RG@example.com", json!(jorg)),
            ("j\u{D6}rg@EXAMPLE.com", json!(jorg)),
            // Only ASCII is lowercased: a lowercase o-umlaut is another address.
            ("j\u{F6}rg@example.com", Value::Null),
            // Only spaces are trimmed.
            ("mark@example.com", Value::Null),
            ("lin@example.com", json!(lin)),
        ] {
            let reply = api(&app, &token(json!({"email": email}))).await;
            assert_eq!(reply.status, StatusCode::OK, "{email}: {:?}", reply.body);
            assert_eq!(reply.body["partner"], partner, "{email} on {}", db.backend);
        }
        // Kate's registration took nothing from the look-alike contact.
        let kate = api(&app, &token(json!({"email": "kate@example.com"}))).await;
        assert_eq!(kate.body["email"], "kate@example.com");
        db.finish().await;
    }
}

#[tokio::test]
async fn steady_traffic_is_served_from_the_cache_and_a_zero_ttl_turns_it_off() {
    for db in backends().await {
        let (directory, registry) = setup(
            &db,
            vec![validator(
                "app",
                User::directory(UserMatch::Email).register(false),
            )],
        )
        .await;
        let mut settings = SqlSettings::new(&db.url);
        settings.cache_ttl = Duration::ZERO;
        let uncached_dir = connect(settings).await;
        let uncached = Registry::builder()
            .users(uncached_dir.clone())
            .validator(validator("app", User::directory(UserMatch::Email)))
            .build()
            .unwrap();
        db.add_user("c@example.com", "c@example.com").await;
        let cached_app = app(&registry, &directory, "jwt_app");
        let uncached_app = app(&uncached, &uncached_dir, "jwt_app");
        let t = token(json!({"email": "c@example.com"}));
        assert_eq!(api(&cached_app, &t).await.status, StatusCode::OK);
        assert_eq!(api(&uncached_app, &t).await.status, StatusCode::OK);
        // The row goes away behind the directories' backs: the cached one makes no query.
        db.exec("DELETE FROM jwtgate_users").await;
        assert_eq!(
            api(&cached_app, &t).await.status,
            StatusCode::OK,
            "{}",
            db.backend
        );
        assert_eq!(
            api(&uncached_app, &t).await.status,
            StatusCode::UNAUTHORIZED
        );
        // A forgotten user is looked up again.
        let id = jwtgate::identity::UserId::from(1_u64);
        directory.forget(&id);
        let after = api(&cached_app, &t).await;
        assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", db.backend);
        db.finish().await;
    }
}

#[tokio::test]
async fn an_existing_schema_is_used_through_the_mapping_without_migrations() {
    for db in backends().await {
        let id = if db.backend == "sqlite" {
            "INTEGER PRIMARY KEY AUTOINCREMENT"
        } else {
            "SERIAL PRIMARY KEY"
        };
        db.exec(&format!(
            "CREATE TABLE accounts (account_id {id}, mail TEXT, mail_key TEXT UNIQUE, given_name TEXT, \
             family_name TEXT, is_ready BOOLEAN NOT NULL DEFAULT FALSE);\
             CREATE TABLE people (pid {id}, mail TEXT, given_name TEXT, account INTEGER);\
             INSERT INTO people (mail, given_name) VALUES ('Kay@example.com', 'Kay');"
        ))
        .await;
        let mut users = UsersTable::mapped("accounts", "account_id", "mail", "mail_key");
        users.first_name = Some("given_name".into());
        users.last_name = Some("family_name".into());
        users.profile_complete = Some("is_ready".into());
        let mut contacts = ContactsTable::mapped("people", "pid", "mail");
        contacts.first_name = Some("given_name".into());
        contacts.user_id = Some("account".into());
        let mut settings = SqlSettings::new(&db.url);
        settings.users = Some(users);
        settings.contacts = Some(contacts);
        let directory = connect(settings).await;
        let registry = Registry::builder()
            .users(directory.clone())
            .directory(directory.clone())
            .validator(
                validator(
                    "app",
                    User::directory(UserMatch::Email)
                        .register(true)
                        .profile_url("/profile"),
                )
                .partner(Partner::by_email()),
            )
            .build()
            .unwrap();
        let app = app(&registry, &directory, "jwt_app");
        let reply = api(&app, &token(json!({"email": "kay@example.com"}))).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{}: {:?}",
            db.backend,
            reply.body
        );
        assert_eq!(reply.body["first_name"], "Kay");
        assert_eq!(reply.body["profile_complete"], true);
        assert_eq!(
            db.count(
                "SELECT COUNT(*) FROM accounts WHERE mail_key = 'kay@example.com' AND is_ready"
            )
            .await,
            1
        );
        assert_eq!(
            db.count("SELECT COUNT(*) FROM people WHERE account IS NOT NULL")
                .await,
            1
        );
        // No shipped table was created: migrations are off for a mapped schema.
        let tables = if db.backend == "sqlite" {
            "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'jwtgate%'"
        } else {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name LIKE 'jwtgate%'"
        };
        assert_eq!(db.count(tables).await, 0, "{}", db.backend);
        // A user with a token but no contact is a placeholder, sent to the profile page.
        let t = token(json!({"email": "new@example.com"}));
        assert_eq!(page(&app, "/hello", &t).await.status, StatusCode::FOUND);
        db.finish().await;
    }
}

#[tokio::test]
async fn migrations_start_from_an_empty_database_and_run_once() {
    for db in backends().await {
        let settings = SqlSettings::new(&db.url);
        let first = connect(settings.clone()).await;
        let second = connect(settings).await;
        assert_eq!(
            db.count("SELECT COUNT(*) FROM jwtgate_migrations").await,
            1,
            "{}",
            db.backend
        );
        assert_eq!(db.count("SELECT COUNT(*) FROM jwtgate_users").await, 0);
        assert!(first.users(10).await.unwrap().is_empty());
        second.close().await;
        db.finish().await;
    }
}

#[tokio::test]
async fn a_failing_query_is_a_500_that_shows_no_sql() {
    for db in backends().await {
        let mut settings = SqlSettings::new(&db.url);
        settings.users = Some(UsersTable::mapped(
            "missing_table",
            "id",
            "email",
            "email_key",
        ));
        let directory = connect(settings).await;
        let registry = Registry::builder()
            .users(directory.clone())
            .validator(validator("app", User::directory(UserMatch::Email)))
            .build()
            .unwrap();
        let app = app(&registry, &directory, "jwt_app");
        let reply = api(&app, &token(json!({"email": "x@example.com"}))).await;
        assert_eq!(
            reply.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{}",
            db.backend
        );
        let body = reply.body.to_string();
        assert!(
            !body.contains("missing_table") && !body.contains("SELECT"),
            "{body}"
        );
        assert_eq!(reply.body["error"], "server_error");
        db.finish().await;
    }
}

#[tokio::test]
async fn startup_errors_name_the_setting_and_hide_the_password() {
    let err = SqlDirectory::connect(&SqlSettings::new("mysql://x"))
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("directory.url:"), "{err}");
    let mut unreachable = SqlSettings::new("postgres://app:s3cret@127.0.0.1:1/app");
    unreachable.timeout = Duration::from_secs(2);
    let err = SqlDirectory::connect(&unreachable).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("directory.url: cannot connect to postgres://app:***@127.0.0.1:1/app"),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "{text}");
    assert_eq!(err.kind(), jwtgate_sqlx::ErrorKind::Unavailable);
    let missing_dir = SqlSettings::new("sqlite:///nonexistent-dir/sub/x.db");
    let err = SqlDirectory::connect(&missing_dir).await.unwrap_err();
    assert!(err.to_string().starts_with("directory.url:"), "{err}");
    let mut bad = SqlSettings::new("sqlite://x.db");
    bad.users = Some(UsersTable::mapped("users; drop", "id", "email", "key"));
    let err = SqlDirectory::connect(&bad).await.unwrap_err();
    assert!(
        err.to_string().starts_with("directory.users.table:"),
        "{err}"
    );
}

#[tokio::test]
async fn a_validator_with_a_directory_user_needs_a_directory() {
    let err = Registry::builder()
        .validator(validator("app", User::directory(UserMatch::Email)))
        .build()
        .unwrap_err();
    assert_eq!(err.field(), Some("user"));
    // `register`, `service_users` and `profile_url` exist only on `User::directory`, so a
    // validator with another user cannot be given them (the config file's keys are checked at
    // load: jwtgate's config tests).
}
