-- extension_basics: the extension installs and answers, (the worker is checked end to end).
SELECT herald.version();
SELECT extname, extversion, nspname
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'herald';
