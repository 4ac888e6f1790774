DROP TABLE federation_alerts;
DROP TABLE node_status;
