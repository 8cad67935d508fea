#![no_main]
// See jwtgate::__fuzz::compact_jws for what it feeds and what must hold.
libfuzzer_sys::fuzz_target!(|data: &[u8]| jwtgate::__fuzz::compact_jws(data));
