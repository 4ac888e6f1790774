DROP TABLE node_keys;
