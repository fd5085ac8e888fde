#!/usr/bin/env node
// Composes a Federation supergraph from subgraph SDLs with @theguild/federation-composition.
//
//   node compose.mjs --name regional --url http://127.0.0.1:8480/federation/graphql \
//       [--sdl gateway/src/panicsafe/gateway/federation.graphql] [--name ... --url ... --sdl ...] \
//       [--out supergraph.graphql]
//
// Each `--name` starts a subgraph; its `--url` is where the router sends its requests; its `--sdl`
// is a file holding the subgraph SDL. Without `--sdl`, the SDL is asked from the subgraph itself
// (`{ _service { sdl } }` at its URL). With no `--name`, one subgraph is read from the environment:
// FEDERATION_SUBGRAPH_NAME (default "regional"), FEDERATION_SUBGRAPH_URL, FEDERATION_SUBGRAPH_SDL.
// The supergraph goes to `--out`, else FEDERATION_SUPERGRAPH_OUT, else ./supergraph.graphql.
// Exit status 1 with the composition errors on stderr when the subgraphs do not compose.

import { readFile, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { composeServices } from "@theguild/federation-composition";
import { parse } from "graphql";

const USAGE =
  "usage: node compose.mjs [--out FILE] (--name NAME --url URL [--sdl FILE])...\n" +
  "   or: FEDERATION_SUBGRAPH_URL=... [FEDERATION_SUBGRAPH_SDL=...] node compose.mjs [--out FILE]\n";

function parseArguments(argv, env) {
  const subgraphs = [];
  let out = env.FEDERATION_SUPERGRAPH_OUT || "supergraph.graphql";
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i];
    if (flag === "--help" || flag === "-h") {
      process.stdout.write(USAGE);
      process.exit(0);
    }
    const value = argv[i + 1];
    if (value === undefined || value.startsWith("--")) {
      throw new Error(`${flag} needs a value`);
    }
    i += 1;
    if (flag === "--out") {
      out = value;
    } else if (flag === "--name") {
      subgraphs.push({ name: value });
    } else if (flag === "--url" || flag === "--sdl") {
      const current = subgraphs.at(-1);
      if (current === undefined) {
        throw new Error(`${flag} must follow --name`);
      }
      current[flag.slice(2)] = value;
    } else {
      throw new Error(`unknown argument ${flag}`);
    }
  }
  if (subgraphs.length === 0 && env.FEDERATION_SUBGRAPH_URL) {
    subgraphs.push({
      name: env.FEDERATION_SUBGRAPH_NAME || "regional",
      url: env.FEDERATION_SUBGRAPH_URL,
      sdl: env.FEDERATION_SUBGRAPH_SDL || undefined,
    });
  }
  if (subgraphs.length === 0) {
    throw new Error("no subgraph given");
  }
  for (const subgraph of subgraphs) {
    if (!subgraph.url) {
      throw new Error(`subgraph ${subgraph.name} has no --url`);
    }
    new URL(subgraph.url); // throws on a malformed URL
  }
  return { subgraphs, out };
}

async function subgraphSdl(subgraph) {
  if (subgraph.sdl) {
    return readFile(resolve(subgraph.sdl), "utf8");
  }
  const response = await fetch(subgraph.url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ query: "{ _service { sdl } }" }),
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok) {
    throw new Error(`${subgraph.name}: ${subgraph.url} answered HTTP ${response.status}`);
  }
  const body = await response.json();
  const sdl = body?.data?._service?.sdl;
  if (typeof sdl !== "string") {
    throw new Error(`${subgraph.name}: no _service.sdl in the answer (${JSON.stringify(body?.errors ?? body)})`);
  }
  return sdl;
}

async function main() {
  const { subgraphs, out } = parseArguments(process.argv.slice(2), process.env);
  const services = [];
  for (const subgraph of subgraphs) {
    services.push({ name: subgraph.name, url: subgraph.url, typeDefs: parse(await subgraphSdl(subgraph)) });
  }
  const result = composeServices(services);
  if (result.errors) {
    for (const error of result.errors) {
      process.stderr.write(`composition error: ${error.message}\n`);
    }
    process.exit(1);
  }
  await writeFile(resolve(out), result.supergraphSdl.endsWith("\n") ? result.supergraphSdl : `${result.supergraphSdl}\n`);
  process.stderr.write(`supergraph of ${services.map((s) => s.name).join(", ")} written to ${out}\n`);
}

main().catch((error) => {
  process.stderr.write(`compose.mjs: ${error.message}\n${USAGE}`);
  process.exit(2);
});
