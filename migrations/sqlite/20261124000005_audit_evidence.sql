-- The numbers an automatic action decided on (guardrail verdicts), kept with it.
ALTER TABLE audit_log ADD COLUMN evidence TEXT;
