/** Entry point of the `/monitor/` page: mounts {@link App} and connects with the stored token. */
import { render } from 'preact';
import { App } from './app.tsx';
import { restart } from './connection.ts';
import './styles.css';

render(<App />, document.getElementById('app')!);
restart();
