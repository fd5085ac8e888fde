// The committed types are those `npm run codegen` makes from web/schema.graphql (itself checked against
// the gateway's schema by tests/test_web_schema.py): stale types fail here.
import { readFileSync } from "node:fs";
import { generate } from "@graphql-codegen/cli";
import { describe, expect, it } from "vitest";
import config from "../../codegen";

describe("generated GraphQL types", () => {
  it("match the schema and the operations", async () => {
    const root = `${process.cwd()}/`; // vitest runs from web/
    const absolute = {
      ...config,
      schema: `${root}${config.schema as string}`,
      documents: (config.documents as string[]).map((d) => `${root}${d}`),
      silent: true,
    };
    const outputs = await generate(absolute, false);
    const fresh = outputs.find((o: { filename: string }) => o.filename.endsWith("src/api/generated.ts"));
    expect(fresh).toBeDefined();
    const committed = readFileSync(`${root}src/api/generated.ts`, "utf8");
    expect(committed).toBe(fresh!.content);
  }, 30_000);
});
