-- What a webhook's requests look like: Sluice's own signed JSON, or the message
-- shape of a chat service's incoming webhook (slack, feishu, dingtalk, wecom).
ALTER TABLE webhooks ADD COLUMN format TEXT COLLATE "C" NOT NULL DEFAULT 'json';
-- Chat services sign nothing, or only when their bot's "sign" security is on, so a
-- webhook in a chat format may have no secret: the empty string stands for none,
-- as on SQLite, which cannot drop the column's NOT NULL in place.
