import './base.css';
import './transcript.css';
import './outcome.css';
