-- broker_api: the JSON wrappers behind the sidecar's Broker routes (55_broker_api.sql).
-- Each error shows its SQLSTATE: class 22 is answered 400, 28000 is 401, HR0xx per
-- hs_pg_error_status. Ids are random: the output shows facts about them, not the ids.

-- POST /users
SELECT herald.api_create_user('{"username":"ba_alice","password":"pw","info":{"x":1}}')::jsonb ? 'id' AS created;
SELECT info FROM herald.users WHERE username = 'ba_alice';
SELECT herald.api_create_user('{"username":"ba_bob","password":"pw"}') IS NOT NULL AS info_is_optional;
SELECT info FROM herald.users WHERE username = 'ba_bob';
SELECT regress_err($$SELECT herald.api_create_user('{"username":"ba_alice","password":"other"}')$$);
SELECT regress_err($$SELECT herald.api_create_user('{"username":"ba_x",')$$);
SELECT regress_err($$SELECT herald.api_create_user('')$$);
SELECT regress_err($$SELECT herald.api_create_user('[1]')$$);
SELECT regress_err($$SELECT herald.api_create_user('{"password":"pw"}')$$);
SELECT regress_err($$SELECT herald.api_create_user('{"username":7,"password":"pw"}')$$);
SELECT regress_err($$SELECT herald.api_create_user('{"username":"","password":"pw"}')$$);
SELECT regress_err($$SELECT herald.api_create_user('{"username":"ba_y","password":null}')$$);
-- SQL-looking input is data.
SELECT herald.api_create_user($j${"username":"ba_'); DROP TABLE herald.users; --","password":"' OR 1=1"}$j$) IS NOT NULL AS stored;
SELECT username FROM herald.users WHERE username LIKE 'ba\_''%';

-- POST /login
SELECT herald.api_login('{"username":"ba_alice","password":"pw"}') = (SELECT id FROM herald.users WHERE username = 'ba_alice') AS login_ok;
SELECT herald.api_login('{"username":"ba_alice","password":"wrong"}') IS NULL AS wrong_password;
SELECT herald.api_login('{"username":"ba_nobody","password":"pw"}') IS NULL AS unknown_user;
SELECT regress_err($$SELECT herald.api_login('{"username":"ba_alice"}')$$);

-- POST /insert
SELECT id AS alice FROM herald.users WHERE username = 'ba_alice' \gset
SELECT id AS bob FROM herald.users WHERE username = 'ba_bob' \gset
SELECT herald.api_insert_event(:'alice', '{"event":"ba_price","timestamp":32503680000,"data":{"v":1}}')::jsonb ->> 'id' AS future \gset
SELECT event, publish_at = to_timestamp(32503680000) AS at_that_second, data, published_at IS NULL AS pending
  FROM herald.events WHERE id = :'future';
SELECT regress_err(format($$SELECT herald.api_insert_event(%L, '{"event":"ba_price","timestamp":1.5,"data":1}')$$, :'alice'));
SELECT regress_err(format($$SELECT herald.api_insert_event(%L, '{"event":"ba_price","timestamp":"1700000000","data":1}')$$, :'alice'));
SELECT regress_err(format($$SELECT herald.api_insert_event(%L, '{"event":"ba_price","timestamp":-1,"data":1}')$$, :'alice'));
SELECT regress_err(format($$SELECT herald.api_insert_event(%L, '{"event":"ba_price","data":1}')$$, :'alice'));
SELECT regress_err(format($$SELECT herald.api_insert_event(%L, '{"event":"ba_price","timestamp":1}')$$, :'alice'));
SELECT regress_err(format($$SELECT herald.api_insert_event(%L, '{"timestamp":1,"data":1}')$$, :'alice'));
SELECT regress_err(format($$SELECT herald.api_insert_event(%L, '{"event":"internal_status","timestamp":1,"data":1}')$$, :'alice'));
SELECT regress_err(format($$SELECT herald.api_insert_event(%L, '{"event":"a\nb","timestamp":1,"data":1}')$$, :'alice'));
SELECT regress_err(format($$SELECT herald.api_insert_event(%L, '{"event":"ba_price","timestamp":1,"data":1}')$$, gen_random_uuid()));

-- GET /events/{event}
SELECT json_array_length(herald.api_event_log(:'alice', 'ba_price')) AS versions;
SELECT herald.api_event_log(:'alice', 'ba_nothing') AS none;
SELECT regress_err(format($$SELECT herald.api_event_log(%L, 'ba_price')$$, gen_random_uuid()));

-- GET /events/{id}/cancel
SELECT regress_err(format($$SELECT herald.api_cancel_event(%L, %L)$$, :'bob', :'future'));
SELECT herald.api_cancel_event(:'alice', :'future')::jsonb - 'id' AS cancelled;
SELECT regress_err(format($$SELECT herald.api_cancel_event(%L, %L)$$, :'alice', :'future'));
SELECT regress_err(format($$SELECT herald.api_cancel_event(%L, %L)$$, :'alice', gen_random_uuid()));
SELECT regress_err(format($$SELECT herald.api_cancel_event(%L, %L)$$, gen_random_uuid(), :'future'));
