// Prints an import map that lets a browser load better-auth's client straight from
// node_modules (no bundler): each bare specifier the client reaches, resolved as Node
// resolves it, as a path under this folder. tests/browser/test_better_auth_browser.py
// serves this folder to a page on another origin.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const imports = {};
const seen = new Set();
const specifiers = /(?:import|export)[^"']*?from\s*["']([^"']+)["']|import\s*\(?\s*["']([^"']+)["']/g;

function visit(file) {
  if (seen.has(file)) return;
  seen.add(file);
  for (const match of fs.readFileSync(file, "utf8").matchAll(specifiers)) {
    const specifier = match[1] ?? match[2];
    if (specifier.startsWith("node:")) continue;
    const target = specifier.startsWith(".")
      ? path.resolve(path.dirname(file), specifier)
      : fileURLToPath(import.meta.resolve(specifier, pathToFileURL(file).href));
    if (!specifier.startsWith(".")) imports[specifier] = "/" + path.relative(here, target);
    visit(target);
  }
}

const entry = fileURLToPath(import.meta.resolve("better-auth/client"));
imports["better-auth/client"] = "/" + path.relative(here, entry);
visit(entry);
console.log(JSON.stringify({ imports }));
