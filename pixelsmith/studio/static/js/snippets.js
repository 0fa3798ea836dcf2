// The same request as code: Stability REST with `requests`, Amazon Bedrock
// with `boto3`, and the `pixelsmith` CLI, built from the form's current values
// so a designer can hand an engineer a recipe that works as is.

const py = (v) => (typeof v === "string" ? JSON.stringify(v) : typeof v === "boolean" ? (v ? "True" : "False") : String(v));

function fileName(field, file) {
  const name = file && file.name ? file.name : `${field}.png`;
  return name.replace(/[^\w.\-]+/g, "_");
}

function outName(tool, values) {
  return `${tool.name}.${values.output_format || "png"}`;
}

export function requestsSnippet(tool, values, origin, needsKey) {
  const files = Object.entries(values).filter(([, v]) => v instanceof Blob);
  const data = Object.entries(values).filter(([, v]) => !(v instanceof Blob));
  const lines = ["import requests", ""];
  if (tool.rest_async) {
    lines.push("# creative upscale is asynchronous: the POST returns an id to poll", "import time", "");
  }
  lines.push(`response = requests.post(`, `    "${origin}${tool.rest_path}",`);
  const headers = [`"accept": "${tool.rest_async ? "application/json" : "image/*"}"`];
  if (needsKey) headers.unshift('"authorization": "Bearer YOUR_PIXELSMITH_KEY"');
  lines.push(`    headers={${headers.join(", ")}},`);
  lines.push(files.length
    ? `    files={${files.map(([k, f]) => `"${k}": open("${fileName(k, f)}", "rb")`).join(", ")}},`
    : `    files={"none": ""},  # forces multipart, as Stability's samples do`);
  lines.push(`    data={${data.map(([k, v]) => `"${k}": ${py(v)}`).join(", ")}},`, ")");
  lines.push("response.raise_for_status()");
  if (tool.rest_async) {
    lines.push(
      'generation_id = response.json()["id"]',
      "while True:",
      `    response = requests.get(f"${origin}/v2beta/results/{generation_id}",`,
      `                            headers={${needsKey ? '"authorization": "Bearer YOUR_PIXELSMITH_KEY", ' : ""}"accept": "image/*"})`,
      "    if response.status_code != 202:",
      "        break",
      "    time.sleep(2)",
      "response.raise_for_status()",
    );
  }
  lines.push(`open("${outName(tool, values)}", "wb").write(response.content)`);
  return lines.join("\n");
}

export function boto3Snippet(tool, values, origin, needsKey) {
  if (!tool.bedrock_model) {
    return `# ${tool.name} has no Amazon Bedrock model ID; use the requests or CLI snippet.`;
  }
  const modelId = tool.bedrock_model.startsWith("us.") ? tool.bedrock_model : `us.${tool.bedrock_model}`;
  const body = Object.entries(values).map(([k, v]) =>
    v instanceof Blob ? `    "${k}": b64("${fileName(k, v)}"),` : `    "${k}": ${py(v)},`);
  return [
    "import base64, json",
    "import boto3",
    "",
    "def b64(path):",
    '    return base64.b64encode(open(path, "rb").read()).decode()',
    "",
    "client = boto3.client(",
    '    "bedrock-runtime", region_name="us-west-2",',
    `    endpoint_url="${origin}",`,
    needsKey
      ? '    aws_access_key_id="YOUR_PIXELSMITH_ACCESS_KEY", aws_secret_access_key="YOUR_PIXELSMITH_SECRET",'
      : '    aws_access_key_id="unused", aws_secret_access_key="unused",  # keys are off on this server',
    ")",
    "body = {",
    ...body,
    "}",
    `response = client.invoke_model(modelId="${modelId}", body=json.dumps(body))`,
    'result = json.loads(response["body"].read())',
    `open("${outName(tool, values)}", "wb").write(base64.b64decode(result["images"][0]))`,
  ].join("\n");
}

const shq = (s) => (/^[\w.\-\/:=,]+$/.test(s) ? s : `'${String(s).replace(/'/g, "'\\''")}'`);

export function cliSnippet(tool, values, primary) {
  const parts = ["pixelsmith", "run", tool.name];
  if (primary) parts.push(shq(fileName(primary, values[primary])));
  parts.push("-o", shq(outName(tool, values)));
  for (const [k, v] of Object.entries(values)) {
    if (k === primary) continue;
    const flag = `--${k.replace(/_/g, "-")}`;
    parts.push(flag, shq(v instanceof Blob ? fileName(k, v) : String(v)));
  }
  return parts.join(" ");
}
