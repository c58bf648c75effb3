/*
 * The WHATWG Encoding API (TextEncoder/TextDecoder), which every JavaScript host the kernel
 * runs on provides (Node, browsers). Declared here for lib/kernel/tsconfig.json, which
 * compiles the kernel with no host types at all: a Node global (Buffer, process) or a
 * browser one (window, fetch) in the kernel is then a compile error. The whole-project
 * build leaves this file out and uses the host's own declarations.
 */
interface TextEncoder { encode(input?: string): Uint8Array }
declare var TextEncoder: { prototype: TextEncoder; new (): TextEncoder };
interface TextDecoder { decode(input?: ArrayBufferView | ArrayBuffer): string }
declare var TextDecoder: {
  prototype: TextDecoder;
  new (label?: string, options?: { fatal?: boolean; ignoreBOM?: boolean }): TextDecoder;
};
