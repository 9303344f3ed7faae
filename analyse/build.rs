include!("../build/torch_rpath.rs");
