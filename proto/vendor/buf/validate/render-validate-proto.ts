// Renders proto/vendor/buf/validate/validate.proto from the descriptor embedded in the
// installed @bufbuild/protovalidate, so buf compiles our constraints against exactly the
// rule schema the runtime validator reads (comments are not in a descriptor: see upstream).
//   npx tsx proto/vendor/buf/validate/render-validate-proto.ts > proto/vendor/buf/validate/validate.proto
import { readFileSync } from "node:fs";
import { type DescField, getOption, hasOption, isFieldSet } from "@bufbuild/protobuf";
import {
  type DescriptorProto,
  type EnumDescriptorProto,
  type FieldDescriptorProto,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FieldDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";
import { file_buf_validate_validate, predefined } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";

const file = file_buf_validate_validate;
const proto = file.proto;
const pkgJson = JSON.parse(readFileSync(new URL("../../../../node_modules/@bufbuild/protovalidate/package.json", import.meta.url), "utf8"));
const out: string[] = [];
const w = (line = "") => out.push(line);

w("// Copyright 2023-2026 Buf Technologies, Inc.");
w("//");
w('// Licensed under the Apache License, Version 2.0 (the "License");');
w("// you may not use this file except in compliance with the License.");
w("// You may obtain a copy of the License at");
w("//");
w("//      http://www.apache.org/licenses/LICENSE-2.0");
w("//");
w("// Unless required by applicable law or agreed to in writing, software");
w('// distributed under the License is distributed on an "AS IS" BASIS,');
w("// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.");
w("// See the License for the specific language governing permissions and");
w("// limitations under the License.");
w();
w(`// buf/validate/validate.proto of protovalidate, rendered from the descriptor embedded in`);
w(`// @bufbuild/protovalidate ${pkgJson.version} by render-validate-proto.ts (do not edit; comments`);
w(`// and documentation: https://github.com/bufbuild/protovalidate). Generated code imports the`);
w(`// package's own descriptors instead of a second copy (buf.gen.yaml: rewrite_imports).`);
w();
w(`syntax = "${proto.syntax || "proto2"}";`);
w();
w(`package ${proto.package};`);
w();
for (const dep of proto.dependency) w(`import "${dep}";`);
w();
const fo = proto.options!;
w(`option go_package = ${str(fo.goPackage!)};`);
w(`option java_multiple_files = ${fo.javaMultipleFiles};`);
w(`option java_outer_classname = ${str(fo.javaOuterClassname!)};`);
w(`option java_package = ${str(fo.javaPackage!)};`);

const extendees = [...new Set(proto.extension.map((e) => e.extendee))];
for (const extendee of extendees) {
  w();
  w(`extend ${extendee.slice(1)} {`);
  for (const e of proto.extension.filter((x) => x.extendee === extendee)) w(`  ${fieldLine(e, [])}`);
  w("}");
}
for (const m of proto.messageType) {
  w();
  message(m, file.messages.find((d) => d.proto === m)!.fields);
}
for (const e of proto.enumType) {
  w();
  enumType(e);
}
process.stdout.write(`${out.join("\n")}\n`);

function message(m: DescriptorProto, fields: DescField[]) {
  if (m.nestedType.length || m.enumType.length || m.options) throw new Error(`${m.name}: nested types and message options are not rendered`);
  w(`message ${m.name} {`);
  let openOneof = -1;
  const closeOneof = () => {
    if (openOneof >= 0) w("  }");
    openOneof = -1;
  };
  for (const f of m.field) {
    if (!inOneof(f)) closeOneof();
    else if (f.oneofIndex !== openOneof) {
      closeOneof();
      w(`  oneof ${m.oneofDecl[f.oneofIndex].name} {`);
      openOneof = f.oneofIndex;
    }
    const options = fieldOptions(fields.find((d) => d.proto === f)!);
    w(`${openOneof >= 0 ? "    " : "  "}${fieldLine(f, options).replaceAll("\n", openOneof >= 0 ? "\n  " : "\n")}`);
  }
  closeOneof();
  for (const r of m.extensionRange) w(`  extensions ${r.start} to ${r.end === 536870912 ? "max" : r.end - 1};`);
  if (m.reservedRange.length) w(`  reserved ${m.reservedRange.map((r) => (r.end - 1 === r.start ? `${r.start}` : `${r.start} to ${r.end - 1}`)).join(", ")};`);
  if (m.reservedName.length) w(`  reserved ${m.reservedName.map(str).join(", ")};`);
  w("}");
}

/** proto2: oneof_index is set only on oneof members. */
function inOneof(f: FieldDescriptorProto): boolean {
  return isFieldSet(f, FieldDescriptorProtoSchema.field.oneofIndex);
}

function enumType(e: EnumDescriptorProto) {
  w(`enum ${e.name} {`);
  for (const v of e.value) w(`  ${v.name} = ${v.number};`);
  if (e.reservedRange.length) w(`  reserved ${e.reservedRange.map((r) => (r.end === r.start ? `${r.start}` : `${r.start} to ${r.end}`)).join(", ")};`);
  if (e.reservedName.length) w(`  reserved ${e.reservedName.map(str).join(", ")};`);
  if (e.options) throw new Error(`${e.name}: enum options are not rendered`);
  w("}");
}

function fieldLine(f: FieldDescriptorProto, options: string[]): string {
  const label = inOneof(f) ? "" : f.label === FieldDescriptorProto_Label.REPEATED ? "repeated " : "optional ";
  const type = f.typeName ? f.typeName.slice(1).replace(/^buf\.validate\./, "") : FieldDescriptorProto_Type[f.type].toLowerCase();
  const opts = options.length ? ` [\n${options.map((o) => `    ${o}`).join(",\n")}\n  ]` : "";
  return `${label}${type} ${f.name} = ${f.number}${opts};`;
}

function fieldOptions(desc: DescField): string[] {
  const o = desc.proto.options;
  if (!o) return [];
  if ((o.$unknown ?? []).some((u) => u.no !== predefined.number)) throw new Error(`${desc.proto.name}: options other than (predefined) are not rendered`);
  if (!hasOption(desc, predefined)) return [];
  return getOption(desc, predefined).cel.map(
    (r) => `(predefined).cel = {\n      id: ${str(r.id)}\n      ${r.message ? `message: ${str(r.message)}\n      ` : ""}expression: ${str(r.expression)}\n    }`,
  );
}

/** A protobuf text-format string literal. */
function str(s: string): string {
  return `"${s.replace(/[\\"\n\r\t\x00-\x1f]/g, (c) => ({ "\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t" })[c] ?? `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}`)}"`;
}
