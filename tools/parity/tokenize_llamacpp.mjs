// Tokenize a corpus with llama.cpp (node-llama-cpp, CPU, vocab only) and print the ids.
//
//   node tools/parity/tokenize_llamacpp.mjs MODEL.gguf CORPUS.txt > IDS.txt
//
// CORPUS.txt: one case per line, "<parse_special 0|1> <hex bytes>". Output: one line per
// case, the token ids separated by spaces, or "skip" for a case JS cannot pass through
// (not valid UTF-8: node-llama-cpp takes JS strings, which re-encode invalid bytes; those
// cases come from tokenize_llamacpp.c instead). No BOS is added (add_special = false).
// node-llama-cpp is the peer installed by tools/peer/install into peer/ (git-ignored).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const [modelPath, corpusPath] = process.argv.slice(2);
if (!modelPath || !corpusPath) {
    console.error("usage: node tokenize_llamacpp.mjs MODEL.gguf CORPUS.txt");
    process.exit(2);
}
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const require = createRequire(path.join(root, "peer", "node_modules", "x.js"));
const { getLlama } = await import(pathToFileURL(require.resolve("node-llama-cpp")).href);

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath, vocabOnly: true, gpuLayers: 0 });
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

const out = [];
for (const line of fs.readFileSync(corpusPath, "utf8").split("\n")) {
    if (line === "") continue;
    const [special, hex = ""] = line.split(" ");
    const bytes = Buffer.from(hex, "hex");
    let text;
    try {
        text = decoder.decode(bytes);
    } catch {
        out.push("skip");
        continue;
    }
    // JS strings cannot hold lone surrogates round-trip either; valid UTF-8 never has them.
    const ids = model.tokenize(text, special === "1");
    out.push(Array.from(ids).join(" "));
}
process.stdout.write(out.join("\n") + "\n");
await model.dispose();
await llama.dispose();
