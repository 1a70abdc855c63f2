//! Declarative gate policies (issue #6).
