/**
 * The ONE way tests reach the gateway: `client/gatewayClient.ts`, shared with `npm run demo`
 * so that adding credentials later touches one place.
 */
export * from '../../client/gatewayClient.ts';
