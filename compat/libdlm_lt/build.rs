fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libdlm_lt.so.3");
}
