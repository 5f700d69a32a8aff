//! Manifest inclusion rules (spec §5).
