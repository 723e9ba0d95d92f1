//! TODO(helper)
pub struct Transcript;
