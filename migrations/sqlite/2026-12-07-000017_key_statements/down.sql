DROP TABLE key_statements;
