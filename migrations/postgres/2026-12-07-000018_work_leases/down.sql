DROP TABLE work_leases;
