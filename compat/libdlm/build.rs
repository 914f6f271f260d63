fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libdlm.so.3");
}
