-- extension_basics: the extension installs and answers, the worker is registered.
SELECT herald.version();
SELECT extname, extversion, nspname
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'herald';
SELECT count(*) AS scheduler_workers
  FROM pg_stat_activity WHERE backend_type = 'herald scheduler';
