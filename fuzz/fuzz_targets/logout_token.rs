#![no_main]
// See jwtgate::__fuzz::logout_token for what it feeds and what must hold.
libfuzzer_sys::fuzz_target!(|data: &[u8]| jwtgate::__fuzz::logout_token(data));
