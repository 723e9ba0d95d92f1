//! TODO(helper): streaming matcher.
use super::Pattern;
pub struct Matcher;
pub enum Event { Watch { index: usize, line: String }, Expected(Expected) }
pub struct Expected { pub index: usize, pub matched: String, pub before: String, pub line: String }
impl Matcher { pub fn new(_w: Vec<Pattern>) -> Self { Matcher } }
