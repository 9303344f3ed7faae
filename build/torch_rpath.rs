// Shared by the build scripts of the crates whose binaries link libtorch (`include!`d).
//
// torch-sys finds libtorch (with LIBTORCH_USE_PYTORCH=1, in the active Python's torch package)
// and exports its lib directory as DEP_TCH_LIBTORCH_LIB to crates that depend on it directly.
// Writing that directory into the binaries' run path lets `vigie` and the test binaries find
// libtorch at run time without LD_LIBRARY_PATH.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
