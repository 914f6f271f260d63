fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libudlm.so.1");
}
