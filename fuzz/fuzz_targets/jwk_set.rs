#![no_main]
// See jwtgate::__fuzz::jwk_set for what it feeds and what must hold.
libfuzzer_sys::fuzz_target!(|data: &[u8]| jwtgate::__fuzz::jwk_set(data));
