-- Chat sessions kept by the edge worker. Every row is scoped by tenant.
CREATE TABLE IF NOT EXISTS sessions (
  tenant            TEXT    NOT NULL,
  id                TEXT    NOT NULL,
  created_at        INTEGER NOT NULL,           -- unix seconds
  updated_at        INTEGER NOT NULL,
  expires_at        INTEGER NOT NULL,           -- updated_at + SESSION_TTL_SECONDS; the cron prunes past it
  prompt_tokens     INTEGER NOT NULL DEFAULT 0, -- summed upstream usage of the session's answers
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  message_count     INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant, id)
);
CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at);

CREATE TABLE IF NOT EXISTS messages (
  tenant     TEXT    NOT NULL,
  session_id TEXT    NOT NULL,
  seq        INTEGER NOT NULL,                  -- 1, 2, … per session
  role       TEXT    NOT NULL,
  message    TEXT    NOT NULL,                  -- the message object as JSON
  tokens     INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (tenant, session_id, seq)
);
