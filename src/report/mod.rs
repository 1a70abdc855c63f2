//! Renderers for verdicts and reports: text, JSON, JUnit, GitHub annotations (issue #5).
