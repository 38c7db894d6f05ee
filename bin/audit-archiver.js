#!/usr/bin/env node
'use strict';
// The installed command: runs the compiled CLI (npm ci / npm run build produce dist/).
const path = require('node:path');
const fs = require('node:fs');
const entry = path.join(__dirname, '..', 'dist', 'src', 'app', 'cli', 'main.js');
if (!fs.existsSync(entry)) {
  process.stderr.write(
    'audit-archiver is not built yet: run `npm run build` in ' + path.dirname(__dirname) + '\n',
  );
  process.exit(1);
}
require(entry)
  .main(process.argv)
  .then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(
        'internal error: ' + (err && err.stack ? err.stack : String(err)) + '\n',
      );
      process.exitCode = 1;
    },
  );
