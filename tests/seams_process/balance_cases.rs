//! placeholder
use crate::Case;
pub(crate) fn cases() -> Vec<Case> {
    vec![]
}
