# flake.nix's outputs evaluated against a stand-in for nixpkgs, which Nix cannot fetch here:
# its library functions the flake calls, and packages that are fixed paths. What the flake
# computes from them (attribute names, the wrapper's arguments, the bootCheck derivation's build
# script) is then the flake's own, for tests/flake.rs and tests/sandbox.rs to check and run.
{ flake, image, scenarios ? [ ], failOnFail ? true }:
let
  escapeShellArg = arg: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString arg) + "'";
  lib = {
    genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
    importTOML = path: builtins.fromTOML (builtins.readFile path);
    fileset = {
      toSource = { root, fileset }: "/stub/source";
      unions = files: files;
    };
    makeBinPath = packages: builtins.concatStringsSep ":" (map (p: "${p}/bin") packages);
    optionals = condition: list: if condition then list else [ ];
    escapeShellArgs = args: builtins.concatStringsSep " " (map escapeShellArg args);
    getExe = drv: "${drv}/bin/${drv.meta.mainProgram}";
    licenses = { mit = "mit"; asl20 = "asl20"; };
    platforms.linux = [ "x86_64-linux" "aarch64-linux" ];
  };
  pkgsFor = isAarch64: {
    stdenv.hostPlatform = { inherit isAarch64; };
    ubootQemuAarch64 = "/stub/uboot-native";
    pkgsCross.aarch64-multiplatform.ubootQemuAarch64 = "/stub/uboot-cross";
    qemu = "/stub/qemu";
    e2fsprogs = "/stub/e2fsprogs";
    makeWrapper = "/stub/makeWrapper";
    rustPlatform.buildRustPackage = args: args // { outPath = "/stub/harness"; };
    runCommand = name: attrs: buildCommand: attrs // { inherit name buildCommand; };
  };
  nixpkgs = {
    inherit lib;
    legacyPackages = { x86_64-linux = pkgsFor false; aarch64-linux = pkgsFor true; };
  };
  outputs = (import flake).outputs { self = outputs; inherit nixpkgs; };
  check = outputs.lib.x86_64-linux.bootCheck {
    name = "r2s";
    inherit image scenarios failOnFail;
    env.R2S_PASSWORD = "from-the-check";
  };
in
{
  packages = builtins.mapAttrs (system: packages: builtins.attrNames packages) outputs.packages;
  wrapper = builtins.mapAttrs (system: packages: packages.default.postInstall) outputs.packages;
  app = { inherit (outputs.apps.x86_64-linux.default) type program; };
  check = { inherit (check) name buildCommand R2S_PASSWORD; };
}
