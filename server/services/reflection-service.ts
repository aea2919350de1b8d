// gRPC server reflection, so grpcurl, buf curl and Postman can discover the API without
// .proto files. Spec: https://github.com/grpc/grpc/blob/master/doc/server-reflection.md
import { createRegistry, toBinary, type DescFile, type Registry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

/** Both versions' requests carry the same oneof; only their type names differ. */
type ReflectionRequest = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;

/** The response oneof as plain init objects, valid for both versions' response messages. */
type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

/**
 * Serves grpc.reflection.v1 and v1alpha (older grpcurl and buf curl fall back to v1alpha)
 * from `files`: every service in them is announced, and any of them or their transitive
 * imports can be fetched. Pass the health and reflection files too, to announce those.
 */
export function registerReflection(router: ConnectRouter, files: DescFile[]): void {
  const answer = reflectionAnswers(files);
  // Generic over the request type, so each version's responses echo its own request.
  async function* serverReflectionInfo<R extends ReflectionRequest>(requests: AsyncIterable<R>) {
    for await (const req of requests) {
      yield { validHost: req.host, originalRequest: req, messageResponse: answer(req) };
    }
  }
  router.service(v1.ServerReflection, { serverReflectionInfo });
  router.service(v1alpha.ServerReflection, { serverReflectionInfo });
}

function reflectionAnswers(files: DescFile[]): (req: ReflectionRequest) => Answer {
  const all = closure(files);
  const byName = new Map(all.map((f) => [f.proto.name, f]));
  const registry = createRegistry(...all);
  const services = files.flatMap((f) => f.services.map((s) => ({ name: s.typeName })));

  return (req) => {
    const { case: kind, value } = req.messageRequest;
    switch (kind) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: services } };
      case "fileByFilename":
        return withDependencies(byName.get(value)) ?? notFound(`file ${value}`);
      case "fileContainingSymbol":
        return withDependencies(fileOfSymbol(registry, value)) ?? notFound(`symbol ${value}`);
      case "fileContainingExtension": {
        const extendee = registry.getMessage(value.containingType);
        const ext = extendee && registry.getExtensionFor(extendee, value.extensionNumber);
        return withDependencies(ext?.file) ?? notFound(`extension ${value.extensionNumber} of ${value.containingType}`);
      }
      case "allExtensionNumbersOfType": {
        if (!registry.getMessage(value)) return notFound(`type ${value}`);
        const numbers = [...registry].flatMap((t) => (t.kind == "extension" && t.extendee.typeName == value ? [t.number] : []));
        return { case: "allExtensionNumbersResponse", value: { baseTypeName: value, extensionNumber: numbers } };
      }
      default:
        // grpc-go ends the stream on an empty request rather than answering in it.
        throw new ConnectError("reflection request without message_request", Code.InvalidArgument);
    }
  };
}

/** The file first, then everything it imports: clients resolve imports from the same answer. */
function withDependencies(file: DescFile | undefined): Answer | undefined {
  if (!file) return undefined;
  const fileDescriptorProto = closure([file]).map((f) => toBinary(FileDescriptorProtoSchema, f.proto));
  return { case: "fileDescriptorResponse", value: { fileDescriptorProto } };
}

/** The files and their transitive imports, each once, in first-seen order. */
function closure(files: DescFile[]): DescFile[] {
  const seen = new Map<string, DescFile>();
  const visit = (f: DescFile) => {
    if (seen.has(f.proto.name)) return;
    seen.set(f.proto.name, f);
    f.dependencies.forEach(visit);
  };
  files.forEach(visit);
  return [...seen.values()];
}

/** Resolves types and services directly; methods, fields, oneofs and enum values through their scope. */
function fileOfSymbol(registry: Registry, symbol: string): DescFile | undefined {
  const name = symbol.replace(/^\./, "");
  const type = registry.get(name);
  if (type) return type.file;
  const scope = scopeOf(name);
  const member = name.slice(scope ? scope.length + 1 : 0);
  const parent = registry.get(scope);
  if (parent?.kind == "service" && parent.methods.some((m) => m.name == member)) return parent.file;
  if (parent?.kind == "message" && [...parent.fields, ...parent.oneofs].some((f) => f.name == member)) return parent.file;
  // Enum values live in their enum's enclosing scope: pkg.Color.RED is named pkg.RED.
  for (const t of registry) {
    if (t.kind == "enum" && scopeOf(t.typeName) == scope && t.values.some((v) => v.name == member)) return t.file;
  }
  return undefined;
}

function scopeOf(fullName: string): string {
  return fullName.slice(0, Math.max(fullName.lastIndexOf("."), 0));
}

function notFound(what: string): Answer {
  return { case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage: `${what} not found` } };
}
