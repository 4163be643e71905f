-- outbox_replay: streams, the outbox, replay after a seq, pruning and the reset row.

-- seq is 1, 2, 3 ... per stream; streams are independent
SELECT herald.stream_position('rp:a') AS empty_position;
SELECT herald.send('rp:a', 'one') AS seq;
SELECT herald.send('rp:a', '{"two": 2}'::jsonb, 'json') AS seq;
SELECT herald.send('rp:b', 'other stream') AS seq;
SELECT herald.send('rp:a', 'three') AS seq;
SELECT herald.send_batch('rp:a', ARRAY['four', 'five', 'six']) AS last_seq;
SELECT herald.send_batch('rp:a', ARRAY[]::text[]) AS empty_batch_position;
SELECT herald.stream_position('rp:a') AS position;
-- an unknown literal picks the text variant
SELECT herald.send('rp:c', 'not json {') AS seq;

-- replay: ascending, after a seq, limited
SELECT * FROM herald.replay('rp:a', 0);
SELECT * FROM herald.replay('rp:a', 4);
SELECT * FROM herald.replay('rp:a', 1, 2);
SELECT * FROM herald.replay('rp:a', 6);
SELECT * FROM herald.replay('rp:unknown', 0);
-- data comes back byte for byte, whatever it holds
SELECT herald.send('rp:bytes', E'emoji 😀, CR \r, LF \n, NUL-free, quote " and \\') AS seq;
SELECT data = E'emoji 😀, CR \r, LF \n, NUL-free, quote " and \\' AS same FROM herald.replay('rp:bytes', 0);

-- beyond the end (e.g. a client of an older database): a reset to the stream's position
SELECT * FROM herald.replay('rp:a', 99);
SELECT * FROM herald.replay('rp:unknown', 5);

-- a rolled-back send leaves nothing and takes no seq
BEGIN;
SELECT herald.send('rp:a', 'rolled back') AS seq;
ROLLBACK;
SELECT herald.send('rp:a', 'seven') AS seq;
SELECT count(*) AS messages, max(seq) FROM herald.messages WHERE stream = 'rp:a';

-- retention: herald.outbox_retention (default 7 days)
SELECT herald.outbox_retention();
-- nothing is old enough yet
SELECT herald.prune_outbox() AS pruned;
-- make rp:a's messages 1..3 and rp:b's only message older than the retention; rp:a's 5 too,
-- so the prefix 1..5 goes (4 is younger but a stream is always pruned as a prefix). One
-- transaction, so that the background worker's own prune cannot take them first.
BEGIN;
UPDATE herald.outbox o SET created_at = now() - herald.outbox_retention() - interval '1 hour'
  FROM herald.streams s
 WHERE s.id = o.stream_id AND ((s.stream = 'rp:a' AND o.seq IN (1, 2, 3, 5)) OR s.stream = 'rp:b');
SELECT herald.prune_outbox() AS pruned;
COMMIT;
SELECT stream, last_seq, pruned_through FROM herald.streams WHERE stream LIKE 'rp:%' ORDER BY stream;
SELECT herald.prune_outbox() AS pruned_again;
-- replay from a pruned position: the reset row says where to resume, then what is left
SELECT * FROM herald.replay('rp:a', 0);
SELECT * FROM herald.replay('rp:a', 4);
SELECT * FROM herald.replay('rp:a', 5);
SELECT * FROM herald.replay('rp:b', 0);
SELECT * FROM herald.replay('rp:b', 1);
-- the stream goes on after pruning
SELECT herald.send('rp:b', 'after pruning') AS seq;
SELECT * FROM herald.replay('rp:b', 1);
-- the outbox holds exactly (pruned_through, last_seq] of every stream
SELECT s.stream, count(o.seq) = s.last_seq - s.pruned_through AS exact,
	   coalesce(min(o.seq), s.last_seq + 1) = s.pruned_through + 1 AS starts_after_pruned
  FROM herald.streams s LEFT JOIN herald.outbox o ON o.stream_id = s.id
 WHERE s.stream LIKE 'rp:%'
 GROUP BY s.stream, s.last_seq, s.pruned_through ORDER BY s.stream;
