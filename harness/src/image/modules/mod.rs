//! Kernel modules as a loader finds them: kmod's binary index ([`kmod_index`]), depmod's text
//! files ([`depmod`]), the index files for a set of modules ([`index_files`]), and the release
//! a module or kernel was built for ([`vermagic`]).

pub mod depmod;
pub mod index_files;
pub mod kmod_index;
pub mod on_root;
pub mod vermagic;
