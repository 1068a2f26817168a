-- Presentation for the Grafana boards: region names (GB/T 2260, as reference/regions.py; a test keeps
-- the two equal) and quarantine without the raw input (Grafana shows reasons, not operators' payloads).

CREATE TABLE iw_region (
    code     integer PRIMARY KEY,
    name_en  text NOT NULL,
    name_zh  text NOT NULL,
    parent   integer REFERENCES iw_region (code),
    name     text GENERATED ALWAYS AS (name_en || ' ' || name_zh) STORED
);

INSERT INTO iw_region (code, name_en, name_zh, parent) VALUES
    (360000, 'Jiangxi', '江西省', NULL),
    (360100, 'Nanchang', '南昌', 360000),
    (360200, 'Jingdezhen', '景德镇', 360000),
    (360300, 'Pingxiang', '萍乡', 360000),
    (360400, 'Jiujiang', '九江', 360000),
    (360500, 'Xinyu', '新余', 360000),
    (360600, 'Yingtan', '鹰潭', 360000),
    (360700, 'Ganzhou', '赣州', 360000),
    (360800, 'Ji''an', '吉安', 360000),
    (360900, 'Yichun', '宜春', 360000),
    (361000, 'Fuzhou', '抚州', 360000),
    (361100, 'Shangrao', '上饶', 360000);

CREATE VIEW iw_rejection AS
SELECT id, batch_id, source, operator, location, field, reason, received_at
FROM quarantine;
