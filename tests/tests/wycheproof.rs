//! Published test vectors: Wycheproof's JSON Web Signature and JSON Web Key files (C2SP/
//! wycheproof, Apache-2.0, vendored in `tests/vectors/wycheproof/` with their licence), each
//! vector run through jwtgate's signature-level entry point (`jwtgate::__fuzz::verify_jws`:
//! strict header, pinned algorithm, key checks, signature). Every vector jwtgate answers
//! differently from Wycheproof's verdict is listed below with the reason; any other
//! difference fails.

use std::collections::BTreeMap;

use serde_json::Value;

/// (file, tcId) → why jwtgate's answer differs from the vector's.
const DIFFERENT: &[(&str, u64, &str)] = &[
    (
        KEYS,
        1,
        "a set of an HS256 and an RS256 key: a validator pins one algorithm (here the token's \
         HS256, as an operator configuring a static set would), so no other key type is ever \
         tried; remote sets never serve oct keys at all",
    ),
    (
        KEYS,
        4,
        "two keys under one kid: jwtgate keeps the first and skips the second ('duplicate \
         kid'), and the token verifies with the first; RFC 7517 4.5 makes distinct kids a \
         SHOULD, and both keys are the key source's own",
    ),
    (
        SIGNATURES,
        346,
        "RFC 7520 Figure 20 is PS384 with a JWK whose alg is PS256: jwtgate uses a key only for \
         the algorithm it names (RFC 7517 4.4), and pins one per validator",
    ),
    (SIGNATURES, 350, "as 346, the JWK with key_ops"),
    (
        SIGNATURES,
        347,
        "ES512 (P-521) is not among jwtgate's algorithms (jsonwebtoken has no ES512)",
    ),
    (SIGNATURES, 351, "as 347, the JWK with key_ops"),
    (
        SIGNATURES,
        367,
        "the vector's token is byte for byte tcId 357's, which Wycheproof marks valid: an \
         upstream mislabel (the signature verifies)",
    ),
    (SIGNATURES, 370, "as 367: the same token as tcId 357"),
    (
        SIGNATURES,
        372,
        "a '?' inside the base64url header: jwtgate decodes base64url strictly (RFC 7515 2) and \
         refuses it; Wycheproof marks it valid (it reads like 367's mislabel, swapped)",
    ),
    (SIGNATURES, 373, "as 372, the '?' in the payload"),
];

const SIGNATURES: &str = "json_web_signature_test.json";
const KEYS: &str = "json_web_key_test.json";

fn vectors(file: &str) -> Value {
    let path = format!("{}/vectors/wycheproof/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Every vector of `file` whose verdict jwtgate does not share: its id, comment and what
/// jwtgate said.
fn disagreements(file: &str) -> (usize, BTreeMap<u64, String>) {
    let doc = vectors(file);
    let mut count = 0;
    let mut out = BTreeMap::new();
    for group in doc["testGroups"].as_array().unwrap() {
        let key = group.get("public").or(group.get("private")).unwrap();
        for test in group["tests"].as_array().unwrap() {
            count += 1;
            let jws = test["jws"].as_str().unwrap_or("");
            let said = jwtgate::__fuzz::verify_jws(jws, &key.to_string());
            let expected = test["result"].as_str().unwrap();
            let agrees = match expected {
                "valid" => said.is_ok(),
                "invalid" => said.is_err(),
                // "acceptable": either answer.
                _ => true,
            };
            if !agrees {
                out.insert(
                    test["tcId"].as_u64().unwrap(),
                    format!(
                        "{} {} / {}: Wycheproof {expected}, jwtgate {:?}",
                        test["tcId"],
                        group["comment"].as_str().unwrap_or(""),
                        test["comment"].as_str().unwrap_or(""),
                        said
                    ),
                );
            }
        }
    }
    (count, out)
}

fn check(file: &str, at_least: usize) {
    let (count, found) = disagreements(file);
    assert!(count >= at_least, "{file}: {count} vectors");
    let listed: BTreeMap<u64, &str> = DIFFERENT
        .iter()
        .filter(|(f, _, _)| *f == file)
        .map(|(_, id, why)| (*id, *why))
        .collect();
    let unlisted: Vec<&String> = found
        .iter()
        .filter(|(id, _)| !listed.contains_key(id))
        .map(|(_, what)| what)
        .collect();
    assert!(unlisted.is_empty(), "{file}: {unlisted:#?}");
    let stale: Vec<&u64> = listed.keys().filter(|id| !found.contains_key(id)).collect();
    assert!(
        stale.is_empty(),
        "{file}: listed but agreeing now: {stale:?}"
    );
}

#[test]
fn wycheproof_json_web_signature_vectors() {
    check(SIGNATURES, 401);
}

#[test]
fn wycheproof_json_web_key_vectors() {
    check(KEYS, 26);
}
