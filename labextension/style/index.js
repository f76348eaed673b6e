import './base.css';
import './transcript.css';
