-- name: label_prevalence_by_sex_age
-- description: Prevalence of the 18 CT-RATE abnormality labels by sex and age band: the cases with
--   the label (and an age), the positives and their share, in CT-RATE's label order.
-- param band_years (int, default 10): Width of an age band in years (bands start at multiples of it).
-- param label (ct_rate_label, optional): Only this CT-RATE class (e.g. Lung nodule); every class when omitted.
-- returns: label, sex, age_band, cases, positives, prevalence
-- needs: case_labels

-- Each row's denominator is the cases of that sex and band with a case_labels row of kind ct_rate
-- for the class (CT-RATE's label files, or labels derived from a structured report): one row per
-- case and class, so COUNT(*) counts cases. Cases without CT-RATE labels or an age are left out.
WITH labelled AS (
    SELECT l.label, l.ordinal, l.value, c.sex,
           CAST(FLOOR(c.age / $band_years) * $band_years AS INTEGER) AS age_band
    FROM case_labels AS l
    JOIN cases AS c ON c.case_id = l.case_id
    WHERE l.kind = 'ct_rate' AND c.age IS NOT NULL
      AND ($label IS NULL OR l.label = $label)
), grouped AS (
    SELECT label, sex, age_band, MIN(ordinal) AS label_order, COUNT(*) AS cases,
           COUNT(CASE WHEN value = 1 THEN 1 END) AS positives
    FROM labelled
    GROUP BY label, sex, age_band
)
SELECT label, sex, age_band, cases, positives, CAST(positives AS DOUBLE) / cases AS prevalence
FROM grouped
ORDER BY label_order, label, sex, age_band
