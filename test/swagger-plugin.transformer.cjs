// ts-jest runs TypeScript without the Nest CLI, so the Swagger CLI plugin that `nest build`
// applies (nest-cli.json) is applied here as an AST transformer with the same options.
const { before } = require('@nestjs/swagger/plugin');
const nestCli = require('../nest-cli.json');

const swagger = nestCli.compilerOptions.plugins.find((plugin) => plugin.name === '@nestjs/swagger');

module.exports = {
  name: 'nestjs-swagger-transformer',
  version: 1,
  factory: (tsCompiler) => before(swagger.options, tsCompiler.program),
};
