-- Audit entries about the settings (API keys, webhooks) beside those about
-- experiments, and the kind of actor: a key, the guard, the scheduler or the CLI.
-- Before this, the server's own actions were told apart by name alone.
ALTER TABLE audit_log ADD COLUMN subject_kind TEXT NOT NULL DEFAULT 'experiment';
ALTER TABLE audit_log ADD COLUMN actor_kind TEXT NOT NULL DEFAULT 'key';
UPDATE audit_log SET actor_kind = actor WHERE actor IN ('guard', 'scheduler');
CREATE INDEX audit_log_by_subject_kind ON audit_log (subject_kind, id);
