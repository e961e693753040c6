// esbuild's `file` loader (--loader:.wasm=file): importing a .wasm gives its URL, relative to the
// bundle.
declare module "*.wasm" {
  const url: string;
  export default url;
}
