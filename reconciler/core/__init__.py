"""Pure decisions: given desired, observed and recorded state and a clock, what to do."""
