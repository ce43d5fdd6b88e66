-- bench workload (b): sqlite3 building and querying an indexed table of 300,000 rows in
-- memory (about 1.8M allocator calls). Run as: sqlite3 -batch :memory: < this file
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer TEXT NOT NULL, amount INTEGER, note TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000)
INSERT INTO orders(customer, amount, note)
  SELECT printf('cust-%07d', (i * 7919) % 100003), (i * 31) % 10007, printf('note %d', i) FROM n;
CREATE INDEX orders_by_customer ON orders(customer);
SELECT count(*), sum(amount) FROM orders WHERE customer BETWEEN 'cust-0001000' AND 'cust-0020000';
SELECT customer, count(*), sum(amount) FROM orders GROUP BY customer ORDER BY 3 DESC LIMIT 3;
SELECT count(*) FROM orders o JOIN orders p ON p.id = o.id + 1 WHERE o.customer < p.customer;
