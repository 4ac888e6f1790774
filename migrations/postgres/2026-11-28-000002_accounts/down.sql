DROP TABLE follow_up_tokens;
DROP TABLE sessions;
DROP TABLE officers;
