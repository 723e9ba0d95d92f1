//! TODO(helper): see the module plan.
