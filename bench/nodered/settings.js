// Node-RED settings of the benchmark peer: no editor, no credentials file, the pg module for the
// insert function, the database URL and broker port from the environment (set by bench_mqtt.py).
const pg = require("pg");
module.exports = {
  uiPort: Number(process.env.NODERED_PORT || 1880),
  uiHost: "127.0.0.1",
  httpAdminRoot: false,
  httpNodeRoot: false,
  credentialSecret: false,
  flowFile: "flows.json",
  logging: { console: { level: process.env.NODERED_LOG_LEVEL || "warn", metrics: false, audit: false } },
  functionGlobalContext: {
    pool: new pg.Pool({ connectionString: process.env.NODERED_DATABASE_URL, max: 4 }),
  },
};
