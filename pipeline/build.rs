//! Writes the run path of libtorch into the binaries (see build/torch_rpath.rs).

include!("../build/torch_rpath.rs");
