"""Evidence: the hypothesis's four conditions before each trigger, tested against what
followed, at real levels and at placebo levels."""
